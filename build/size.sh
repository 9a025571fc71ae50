#!/bin/sh
# The binary's size against its budget (issue 10: at most 8 MiB) and where
# the bytes come from.
#
# Builds rootswap as `make build` does (same flags; keep the two in step)
# into a temporary directory and prints its size, the budget,
# `go version -m` of it, and a table of bytes per module: rootswap's own
# packages, the Go standard library, and each module the binary links
# (the dep lines of `go version -m`). The table sums `go tool nm -size` of
# a second build that keeps its symbol table (no -s), grouped by the
# symbol's package path prefix. It attributes text and data symbols only,
# not the runtime type data shared between them: type descriptors and
# strings (the part of .rodata the linker names no symbol for), itabs, the
# function metadata of .gopclntab (about a third of the binary), alignment
# padding and headers have rows of their own. .bss is not in the file.
#
# Exits 1 when the binary is over budget (after printing everything).
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
budget=8388608
version=$(git describe --always --dirty 2>/dev/null || echo dev)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

xflag="-X github.com/rootswap/rootswap/applets.Version=$version"
# The packages build/noinline names are built without inlining, as the
# Makefile builds them.
set --
for p in $(grep -v '^#' build/noinline); do
	set -- "$@" -gcflags="$p=-l"
done
CGO_ENABLED=0 "$GO" build -trimpath "$@" -ldflags "-s -w $xflag" -o "$tmp/rootswap" .
CGO_ENABLED=0 "$GO" build -trimpath "$@" -ldflags "-w $xflag" -o "$tmp/rootswap.sym" .

size=$(wc -c <"$tmp/rootswap" | tr -d ' ')
if [ "$size" -le "$budget" ]; then
	verdict="$((budget - size)) bytes under"
	status=0
else
	verdict="$((size - budget)) bytes OVER"
	status=1
fi
echo "rootswap $version: $size bytes; budget $budget (8 MiB): $verdict"
echo
"$GO" version -m "$tmp/rootswap"
echo

main=$("$GO" version -m "$tmp/rootswap" | awk '$1 == "mod" { print $2 }')
deps=$("$GO" version -m "$tmp/rootswap" | awk '$1 == "dep" { print $2 }')
"$GO" tool nm -size "$tmp/rootswap.sym" | awk -v main="$main" -v deps="$deps" -v size="$size" '
function hex(s,   i, n) {
	n = 0
	s = tolower(s)
	for (i = 1; i <= length(s); i++)
		n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
	return n
}
# The package path of a symbol name: up to the first "." after the last
# "/" that comes before any "(" or "[" (methods and generic arguments
# hold other paths: sync/atomic.(*Pointer[net/http.Client]).Load).
function pkgof(name,   head, cut, slash, dot) {
	head = name
	if (match(head, /[(\[]/))
		head = substr(head, 1, RSTART - 1)
	slash = 0
	while ((cut = index(substr(head, slash + 1), "/")) > 0)
		slash += cut
	dot = index(substr(name, slash + 1), ".")
	if (dot == 0)
		return ""
	return substr(name, 1, slash + dot - 1)
}
function module(pkg,   i, best) {
	if (pkg == "main" || pkg == main || index(pkg, main "/") == 1)
		return main
	best = ""
	for (i = 1; i <= ndep; i++)
		if ((pkg == dep[i] || index(pkg, dep[i] "/") == 1) && length(dep[i]) > length(best))
			best = dep[i]
	if (best != "")
		return best
	# A standard library path has no dot in its first element (vendored
	# packages under vendor/ are the standard library'"'"'s too).
	if (pkg ~ /^vendor\// || pkg !~ /^[^\/]*\./)
		return "std"
	return "other modules"
}
BEGIN {
	ndep = split(deps, dep, "\n")
	order[1] = main; order[2] = "std"
	label[main] = main " (own packages)"
	label["std"] = "Go standard library"
	for (i = 1; i <= ndep; i++) order[i + 2] = dep[i]
	norder = ndep + 2
}
{
	addr[NR] = $1; sz[NR] = $2; typ[NR] = $3; name[NR] = $4
	if ($4 == "runtime.pclntab") pcln = hex($1)
	if ($4 == "runtime.epclntab") epcln = hex($1)
	if ($4 == "runtime.rodata") rodata = hex($1)
	if ($4 == "runtime.erodata") erodata = hex($1)
	if ($4 == "runtime.bss") bss = hex($1)
}
END {
	for (r = 1; r <= NR; r++) {
		a = hex(addr[r]); n = name[r]; s = sz[r] + 0
		if (typ[r] ~ /^[UuBb]$/ || (bss && a >= bss))
			continue # not in the file
		if (a >= pcln && a < epcln)
			continue # counted as a whole below
		if (a >= rodata && a < erodata)
			insyms += s
		if (n ~ /^type:/ || n ~ /^go:itab\./)
			row = "type:* and go:itab.* symbols"
		else if (n ~ /^(go:|\$)/ || (p = pkgof(n)) == "")
			row = "other symbols (assembly data, go:buildinfo)"
		else {
			row = module(p)
			pkgbytes[p] += s
		}
		bytes[row] += s
		total += s
	}
	# The linker writes these without symbols of their own.
	order[++norder] = ".gopclntab (names, pc tables, go:func.*)"
	bytes[order[norder]] = epcln - pcln
	order[++norder] = ".rodata without symbols (types, strings)"
	bytes[order[norder]] = erodata - rodata - insyms
	total += epcln - pcln + erodata - rodata - insyms
	printf "%-48s %10s %7s\n", "bytes by module (go tool nm -size)", "bytes", "share"
	for (i = 1; i <= norder; i++) {
		m = order[i]
		printf "%-48s %10d %6.1f%%\n", (m in label) ? label[m] : m, bytes[m], 100 * bytes[m] / size
		done[m] = 1
	}
	for (m in bytes)
		if (!done[m])
			printf "%-48s %10d %6.1f%%\n", m, bytes[m], 100 * bytes[m] / size
	printf "%-48s %10d %6.1f%%\n", "headers, padding, unnamed data", size - total, 100 * (size - total) / size
	printf "%-48s %10d\n", "total (the stripped binary)", size
	print ""
	print "largest packages:"
	for (p in pkgbytes)
		printf "%10d  %s\n", pkgbytes[p], p | "sort -rn | head -15"
}'
exit "$status"
