//go:build race

package kafka_test

// raceDetector: the race detector multiplies a process's RSS, so RSS bounds
// are checked only without it (heap bounds always).
const raceDetector = true
