// An HTTPS server in Go: its TLS is Go's own (crypto/tls), with no OpenSSL
// for katrace to probe. https CERT KEY IDLE_MS prints "ready PORT" and
// answers "ok PATH"; idle keep-alive connections close after IDLE_MS.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	idle, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "usage: https CERT KEY IDLE_MS")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{
		IdleTimeout: time.Duration(idle) * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "ok %s\n", r.URL.Path)
		}),
	}
	fmt.Println("ready", ln.Addr().(*net.TCPAddr).Port)
	fmt.Fprintln(os.Stderr, srv.ServeTLS(ln, os.Args[1], os.Args[2]))
	os.Exit(1)
}
