package bpfiter

import (
	"fmt"
	"io"
	"unsafe"

	"github.com/rootswap/rootswap/internal/btf"
)

// Kernel runs the iterators of one scan against the running kernel's
// BTF, parsed once.
type Kernel struct{ spec *btf.Spec }

// Open parses the kernel's BTF. The error wraps ErrUnsupported when the
// iterators cannot work here.
func Open() (*Kernel, error) {
	if !littleEndian() {
		return nil, fmt.Errorf("%w: big-endian host", ErrUnsupported)
	}
	spec, err := btf.LoadKernel()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return &Kernel{spec: spec}, nil
}

// walk loads the program build makes for the iterator whose BTF
// function is attachFunc, reads everything it writes in one walk, and
// decodes it.
func walk[T any](k *Kernel, name, attachFunc string, build func(*btf.Spec) ([]byte, error), decode func(io.Reader) ([]T, error)) ([]T, error) {
	id, err := k.spec.FuncID(attachFunc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	prog, err := build(k.spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %s program: %v", ErrUnsupported, name, err)
	}
	it, err := loadIter(name, prog, id)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	return decode(it)
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}
