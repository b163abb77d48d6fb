// Package latency reports benchmark samples as percentiles, since on a
// shared, noisy machine a mean (ns/op) hides what people notice: the slow
// tail.
package latency

import (
	"math"
	"slices"
	"testing"
	"time"
)

// Report adds the p50, p99 and max of samples to b's results, in unit
// (for example time.Millisecond with name "ms": "p50-ms").
func Report(b *testing.B, samples []time.Duration, unit time.Duration, name string) {
	if len(samples) == 0 {
		return
	}
	sorted := slices.Sorted(slices.Values(samples))
	// Nearest rank: the smallest sample that at least p of them do not exceed.
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(sorted)))) - 1
		return sorted[min(max(i, 0), len(sorted)-1)]
	}
	in := func(d time.Duration) float64 { return float64(d) / float64(unit) }
	b.ReportMetric(in(rank(0.50)), "p50-"+name)
	b.ReportMetric(in(rank(0.99)), "p99-"+name)
	b.ReportMetric(in(sorted[len(sorted)-1]), "max-"+name)
}
