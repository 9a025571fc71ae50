package bpfiter

import (
	"fmt"
	"io"
	"sync"
	"unsafe"

	"github.com/rootswap/rootswap/internal/btf"
)

// Kernel runs the iterators of one scan against the running kernel's
// BTF, parsed once. Its methods may run side by side.
type Kernel struct {
	spec *btfAnswers
	// Refuse names programs ("files", "maps", "maps_nameless", "tasks")
	// to treat as refused by the verifier without loading them: the tests
	// take every fallback on kernels that would accept every program.
	Refuse map[string]bool
	// VerifierLog loads a refused program once more with the verifier's
	// log on, for RefusedError.Log: it costs a second verification, so
	// only when someone will read it.
	VerifierLog bool

	mu    sync.Mutex
	notes []string
}

// Open reads the kernel's BTF, or what the programs asked of it from the
// cache of this boot (DefaultBTFCache). The error wraps ErrUnsupported
// when the iterators cannot work here.
func Open() (*Kernel, error) {
	if !littleEndian() {
		return nil, fmt.Errorf("%w: big-endian host", ErrUnsupported)
	}
	return OpenCached(DefaultBTFCache)
}

// OpenCached is Open with the BTF answers cached at path ("" for none).
func OpenCached(path string) (*Kernel, error) {
	spec, err := openBTF(path, btf.KernelPath, loadKernelBTF)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return &Kernel{spec: spec}, nil
}

// Notes says, once each, which programs the kernel refused and what was
// read instead.
func (k *Kernel) Notes() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.notes...)
}

// Note adds s to the notes (a caller's account of what it skipped).
func (k *Kernel) Note(s string) { k.note(s) }

func (k *Kernel) note(s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.notes = append(k.notes, s)
}

// RefusedError is a program the kernel would not load: the verifier's
// verdict (or a refusal the tests asked for). It wraps ErrUnsupported.
type RefusedError struct {
	Program string
	Err     error
	Log     string // the end of the verifier's log, if any
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v: load %s program: %v%s", ErrUnsupported, e.Program, e.Err, e.Log)
}

func (e *RefusedError) Unwrap() error { return ErrUnsupported }

// walk loads the program build makes for the iterator whose BTF
// function is attachFunc, reads everything it writes in one walk, and
// decodes it.
func walk[T any](k *Kernel, name, attachFunc string, build func(kernelBTF) ([]byte, error), decode func(io.Reader) ([]T, error)) ([]T, error) {
	return walkTask(k, name, attachFunc, 0, build, decode)
}

// walkTask is walk narrowed to the one thread tid (0: every task).
func walkTask[T any](k *Kernel, name, attachFunc string, tid int, build func(kernelBTF) ([]byte, error), decode func(io.Reader) ([]T, error)) ([]T, error) {
	var out []T
	err := k.iterate(name, attachFunc, tid, build, func(r io.Reader) (err error) {
		out, err = decode(r)
		return err
	})
	return out, err
}

// iterate is walkTask's work, the same for every record type: one copy
// in the binary, not one per type.
func (k *Kernel) iterate(name, attachFunc string, tid int, build func(kernelBTF) ([]byte, error), decode func(io.Reader) error) error {
	id, err := k.spec.FuncID(attachFunc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	prog, err := build(k.spec)
	if err != nil {
		return fmt.Errorf("%w: %s program: %v", ErrUnsupported, name, err)
	}
	k.spec.save()
	if k.Refuse[name] {
		return &RefusedError{Program: name, Err: fmt.Errorf("refused on request")}
	}
	it, err := loadIter(name, prog, id, tid, k.VerifierLog)
	if err != nil {
		return err
	}
	defer it.Close()
	return decode(it)
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}
