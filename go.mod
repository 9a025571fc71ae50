module github.com/rootswap/rootswap

go 1.26.8

require (
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/u-root/u-root v0.16.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
