//go:build !race

package kafka_test

const raceDetector = false
