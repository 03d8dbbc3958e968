package harness

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// Banner is the first line of a command's report: what ran, where.
func Banner(out io.Writer, title, settings string) {
	fmt.Fprintf(out, "\nOvrlrd %s — %s %s/%s, GOMAXPROCS=%d, %s\n", title,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), settings)
}

// Table writes rows in aligned columns; call Flush after the last.
type Table struct{ *tabwriter.Writer }

func NewTable(out io.Writer) Table { return Table{tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)} }

func (t Table) Row(cells ...string) { fmt.Fprintln(t.Writer, strings.Join(cells, "\t")) }

// Header is a row underlined with dashes.
func (t Table) Header(cells ...string) {
	t.Row(cells...)
	for i, c := range cells {
		cells[i] = strings.Repeat("-", utf8.RuneCountInString(c))
	}
	t.Row(cells...)
}
