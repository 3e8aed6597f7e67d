package bench

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// series is one line of a chart.
type series struct {
	name   string
	class  string // the polylines' class attribute, if set: names the series for tools and tests
	color  string
	right  bool // on the panel's right axis
	dashed bool
	pts    [][2]float64 // x, y; a NaN y is a gap in the line
}

// panel is one plot area of a chart: a left axis, an optional right one.
type panel struct {
	left, right string // axis labels; right "" for none
	series      []series
}

// chart is a line chart: panels stacked over one x axis. It is written as
// plain SVG 1.1, with no script and no external resource.
type chart struct {
	title  string
	xlabel string
	panels []panel
	// marks are vertical dashed lines across the panels, labelled.
	marks []mark
}

type mark struct {
	x     float64
	label string
}

// Layout of a chart, in SVG user units.
const (
	chartWidth  = 900
	panelHeight = 260
	marginLeft  = 80
	marginRight = 80
	marginTop   = 50
	panelGap    = 70
	marginBot   = 60
)

// niceTicks returns tick positions from 0 (or lo) to at least hi, about n
// of them, on steps of 1, 2 or 5 times a power of ten.
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || math.IsInf(hi, 0) || math.IsNaN(hi) {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(max(n, 1))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	start := math.Floor(lo/step) * step
	var ticks []float64
	for v := start; ; v += step {
		ticks = append(ticks, v)
		if v >= hi-step*1e-9 || len(ticks) > 100 {
			break
		}
	}
	return ticks
}

// tickLabel formats a tick value compactly (12k, 1.5M, 0.25).
func tickLabel(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeSVG writes the chart.
func (c *chart) writeSVG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	height := marginTop + len(c.panels)*panelHeight + max(len(c.panels)-1, 0)*panelGap + marginBot
	plotW := float64(chartWidth - marginLeft - marginRight)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(bw, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", chartWidth, height)
	// A long title gets a smaller font, to fit the width (bold sans-serif
	// runs about 0.6 em a character).
	titleSize := min(16, float64(chartWidth-marginLeft-10)/(0.6*float64(max(len(c.title), 1))))
	fmt.Fprintf(bw, `<text x="%d" y="28" font-size="%.1f" font-weight="bold">%s</text>`+"\n", marginLeft, titleSize, esc(c.title))

	xmax := 0.0
	for _, p := range c.panels {
		for _, s := range p.series {
			for _, pt := range s.pts {
				xmax = max(xmax, pt[0])
			}
		}
	}
	for _, m := range c.marks {
		xmax = max(xmax, m.x)
	}
	xt := niceTicks(0, xmax, 10)
	xhi := xt[len(xt)-1]
	xpos := func(x float64) float64 { return marginLeft + x/xhi*plotW }

	for pi, p := range c.panels {
		top := float64(marginTop + pi*(panelHeight+panelGap))
		bottom := top + panelHeight
		var lmax, rmax float64
		for _, s := range p.series {
			for _, pt := range s.pts {
				if math.IsNaN(pt[1]) {
					continue
				}
				if s.right {
					rmax = max(rmax, pt[1])
				} else {
					lmax = max(lmax, pt[1])
				}
			}
		}
		lt := niceTicks(0, lmax, 5)
		rt := niceTicks(0, rmax, 5)
		lhi, rhi := lt[len(lt)-1], rt[len(rt)-1]
		ypos := func(v, hi float64) float64 { return bottom - v/hi*panelHeight }

		// Grid and left ticks.
		for _, v := range lt {
			y := ypos(v, lhi)
			fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", marginLeft, y, marginLeft+plotW, y)
			fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginLeft-6, y, tickLabel(v))
		}
		if p.right != "" {
			for _, v := range rt {
				fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" dominant-baseline="middle" fill="#c0392b">%s</text>`+"\n",
					marginLeft+plotW+6, ypos(v, rhi), tickLabel(v))
			}
		}
		for _, v := range xt {
			x := xpos(v)
			fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#f0f0f0"/>`+"\n", x, top, x, bottom)
			fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, bottom+16, tickLabel(v))
		}
		// Axes.
		fmt.Fprintf(bw, `<path d="M%d %.1f V%.1f H%.1f" fill="none" stroke="black"/>`+"\n", marginLeft, top, bottom, marginLeft+plotW)
		if p.right != "" {
			fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c0392b"/>`+"\n", marginLeft+plotW, top, marginLeft+plotW, bottom)
			fmt.Fprintf(bw, `<text transform="translate(%.1f %.1f) rotate(90)" text-anchor="middle" fill="#c0392b">%s</text>`+"\n",
				float64(chartWidth)-16, (top+bottom)/2, esc(p.right))
		}
		fmt.Fprintf(bw, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+bottom)/2, esc(p.left))
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", marginLeft+plotW/2, bottom+36, esc(c.xlabel))

		for mi, m := range c.marks {
			x := xpos(m.x)
			fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555555" stroke-dasharray="3 3"/>`+"\n", x, top, x, bottom)
			if pi == 0 {
				lx, anchor := x+3, "start"
				if x > marginLeft+plotW/2 {
					lx, anchor = x-3, "end"
				}
				fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" font-size="10" fill="#555555" text-anchor="%s">%s</text>`+"\n", lx, top+12+12*float64(mi), anchor, esc(m.label))
			}
		}
		// Lines.
		for _, s := range p.series {
			if len(s.pts) == 0 {
				continue
			}
			hi := lhi
			if s.right {
				hi = rhi
			}
			dash := ""
			if s.dashed {
				dash = ` stroke-dasharray="6 4"`
			}
			if s.class != "" {
				dash += fmt.Sprintf(` class="%s"`, esc(s.class))
			}
			// One polyline per run of points between gaps.
			var pts strings.Builder
			flush := func() {
				if pts.Len() > 0 {
					fmt.Fprintf(bw, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"%s/>`+"\n", pts.String(), s.color, dash)
					pts.Reset()
				}
			}
			for _, pt := range s.pts {
				if math.IsNaN(pt[1]) {
					flush()
					continue
				}
				if pts.Len() > 0 {
					pts.WriteByte(' ')
				}
				fmt.Fprintf(&pts, "%.1f,%.1f", xpos(pt[0]), ypos(pt[1], hi))
			}
			flush()
		}
		// Legend, above the panel.
		lx := float64(marginLeft)
		for _, s := range p.series {
			if len(s.pts) == 0 {
				continue
			}
			dash := ""
			if s.dashed {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, top-10, lx+22, top-10, s.color, dash)
			fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+27, top-10, esc(s.name))
			lx += 40 + 7*float64(len(s.name))
		}
	}
	fmt.Fprintln(bw, `</svg>`)
	return bw.Flush()
}

// PlotSVG writes an SVG chart of the run over time, one panel above the
// other: messages per second offered, accepted and confirmed; the median
// and p99 confirmation latency of each second; the node's resident
// memory, with its anonymous and file-backed parts where known; and the
// store's size on disk, when the run sampled it.
func (r *Result) PlotSVG(w io.Writer) error {
	const M = 1e6
	var offered, accepted, confirmed, p50, p99, rss, anon, file, live, disk [][2]float64
	for _, s := range r.Timeline {
		offered = append(offered, [2]float64{s.T, s.OfferedPerS})
		accepted = append(accepted, [2]float64{s.T, s.AcceptedPerS})
		confirmed = append(confirmed, [2]float64{s.T, s.ConfirmedPerS})
		if s.P99ConfirmMs > 0 {
			p50 = append(p50, [2]float64{s.T, s.P50ConfirmMs})
			p99 = append(p99, [2]float64{s.T, s.P99ConfirmMs})
		} else { // no confirmation that second
			p50 = append(p50, [2]float64{s.T, math.NaN()})
			p99 = append(p99, [2]float64{s.T, math.NaN()})
		}
		rss = append(rss, [2]float64{s.T, float64(s.RSSBytes) / M})
		if s.AnonBytes > 0 || s.FileBytes > 0 {
			anon = append(anon, [2]float64{s.T, float64(s.AnonBytes) / M})
			file = append(file, [2]float64{s.T, float64(s.FileBytes) / M})
		}
		if s.LiveHeapBytes > 0 {
			live = append(live, [2]float64{s.T, float64(s.LiveHeapBytes) / M})
		}
		if s.DiskBytes > 0 {
			disk = append(disk, [2]float64{s.T, float64(s.DiskBytes) / M})
		}
	}
	load := "as fast as possible"
	if r.Setup.Rate > 0 {
		load = group(r.Setup.Rate) + " msgs/s offered"
	}
	via := fmt.Sprintf("batch %d", r.Setup.Batch)
	if r.Setup.Batch == 1 {
		via = "single messages"
	}
	title := fmt.Sprintf("weft bench %s: %s, %s, %s devices (%s)", r.Scenario, load, via, group(float64(r.Setup.Devices)), r.Setup.Node)
	if ret := r.Setup.Retention; ret != nil {
		title += "; " + ret.String()
	}
	memName := "RSS"
	if len(anon) > 0 {
		memName = "RSS (file-backed pages included)"
	}
	c := chart{
		title:  title,
		xlabel: "seconds since the load started",
		panels: []panel{
			{left: "messages per second", series: []series{
				{name: "offered", class: "offered", color: "#888888", dashed: true, pts: offered},
				{name: "accepted (durable)", class: "accepted", color: "#1f77b4", pts: accepted},
				{name: "confirmed", class: "confirmed", color: "#2ca02c", pts: confirmed},
			}},
			{left: "confirmation latency (ms)", series: []series{
				{name: "p99 of the second (gaps: none confirmed)", class: "p99", color: "#c0392b", pts: p99},
				{name: "median of the second", class: "p50", color: "#e67e22", pts: p50},
			}},
			{left: "resident memory (MB)", series: []series{
				{name: memName, class: "rss", color: "#8e44ad", pts: rss},
				{name: "anonymous (Go heap, stacks)", class: "anon", color: "#d35400", pts: anon},
				{name: "file-backed (the store's maps)", class: "file", color: "#16a085", dashed: true, pts: file},
				{name: "live Go heap", class: "live", color: "#7f8c8d", dashed: true, pts: live},
			}},
		},
	}
	if len(disk) > 0 {
		c.panels = append(c.panels, panel{left: "store on disk (MB)", series: []series{
			{name: "the store's files (allocated blocks)", class: "disk", color: "#2c3e50", pts: disk},
		}})
	}
	if r.WindowS > 0 && len(r.Timeline) > 0 && !r.Timeline[len(r.Timeline)-1].Load {
		c.marks = append(c.marks, mark{x: r.WindowS, label: "end of the measured load; cool-down and drain after"})
	}
	if f := r.Footprint; f != nil && len(disk) > 0 && f.SteadyAfterS > 0 && f.SteadyAfterS < r.Timeline[len(r.Timeline)-1].T {
		c.marks = append(c.marks, mark{x: f.SteadyAfterS, label: "disk expected flat from here"})
	}
	return c.writeSVG(w)
}
