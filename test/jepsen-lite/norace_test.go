//go:build !race

package jepsenlite

const raceEnabled = false
