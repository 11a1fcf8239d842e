//go:build race

package jepsenlite

// raceEnabled: the harness binary is built with -race too.
const raceEnabled = true
