//go:build !race

package main

// raceEnabled: the tests run without -race, and so do the nodes they start.
const raceEnabled = false
