//go:build race

package main

// raceEnabled: the tests run with -race, and so do the nodes they start.
const raceEnabled = true
