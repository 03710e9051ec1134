// lowport-testsrv: a stand-in for fabio in lowport's tests. Like fabio's release builds it is a
// static Go program (CGO_ENABLED=0) from the standard library only, so the Go runtime does at
// start what fabio's does (it raises its open-file limit, it makes raw system calls).
//
// Usage: lowport-testsrv ADDR... — listens on every address (e.g. ":80", "127.0.0.1:8080") and
// answers every HTTP request with the body "lowport-testsrv on PORT\n". A listen error is printed
// and exits 1, so a test sees why it failed.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: lowport-testsrv ADDR...")
		os.Exit(2)
	}
	errs := make(chan error)
	for _, addr := range os.Args[1:] {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "lowport-testsrv:", err)
			os.Exit(1)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		body := "lowport-testsrv on " + port + "\n"
		go func() {
			errs <- http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, body)
			}))
		}()
	}
	fmt.Fprintln(os.Stderr, "lowport-testsrv:", <-errs)
	os.Exit(1)
}
