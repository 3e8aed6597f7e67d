// Package wire is the HTTP API of docs/API.md written once: the JSON forms
// of every endpoint's requests and answers, the table of error codes with
// their HTTP statuses, the batch body, and the server-sent-events encoding
// and decoding of the event stream.
//
// The node's API (package api) encodes with these types, the client
// (package client) and the fake node (package client/clienttest) decode and
// encode with them, and the load generator (package bench) reads the event
// stream with the same decoder. A change of the contract is a change here,
// checked against docs/API.md by this package's tests.
//
// wire is a leaf: it imports dag and the standard library only, so that a
// device importing client stays light.
package wire
