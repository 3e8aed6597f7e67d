package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// servePprof serves the Go profiler's endpoints on ln until it is closed:
// a listener of their own, never the API's, so that what they show (the
// stacks, the heap) is reached only where the operator binds it.
func servePprof(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	srv.Serve(ln) // returns when ln is closed
}
