package tipselect_test

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/tipselect"
)

// tipList is a Pool over a slice; the DAG core keeps its own.
type tipList []dag.ID

func (l *tipList) Len() int         { return len(*l) }
func (l *tipList) Tip(i int) dag.ID { return (*l)[i] }

func ExampleUniform() {
	r := rand.New(rand.NewPCG(1, 2)) // the caller's seeded source

	var tips tipList
	sel := tipselect.NewUniform(&tips)
	if _, _, err := sel.Select(r); errors.Is(err, tipselect.ErrNoTips) {
		fmt.Println("empty pool:", err)
	}

	tips = tipList{{1}, {2}, {3}}
	a, b, err := sel.Select(r)
	if err != nil {
		panic(err)
	}
	fmt.Println("distinct:", a != b)
	// Output:
	// empty pool: tipselect: no tips
	// distinct: true
}
