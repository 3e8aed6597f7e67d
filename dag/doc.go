// Package dag is Weft's ledger core: the message format and the DAG state machine.
package dag
