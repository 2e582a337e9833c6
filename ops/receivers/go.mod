// The Go receiver snippet (verify.go) and its test; standard library only, so
// `go test ./...` needs no network (ops/check.sh runs it with GOPROXY=off).
module github.com/certhook/certhook/ops/receivers

go 1.19
