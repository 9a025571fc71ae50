module github.com/rootswap/rootswap

go 1.26.8

require (
	github.com/dustin/go-humanize v1.1.0
	github.com/klauspost/compress v1.20.4
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
	mvdan.cc/sh/v3 v3.14.1
)

require golang.org/x/term v0.48.0 // indirect
