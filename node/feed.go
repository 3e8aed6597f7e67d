package node

// ConfirmedMessage is a message with its place in the node's confirmation
// order.
type ConfirmedMessage struct {
	Seq uint64
	*MessageInfo
}

// ConfirmCount returns how many confirmations the node has made durable:
// the place the next one takes in its confirmation order. The order is the
// node's own: another node confirms the same messages in an order of its
// own.
func (n *Node) ConfirmCount() uint64 { return n.store.ConfirmCount() }

// ConfirmedSince returns the confirmed messages from place seq on in the
// node's confirmation order, at most limit of them: what a consumer of the
// event feed that saw every confirmation before seq missed. It reads the
// store, so it reaches back to the first confirmation the store keeps: a
// seq whose place retention dropped reads from the first place kept (the
// Seq of the first message returned says where), as do places whose
// messages were dropped, which are passed over.
func (n *Node) ConfirmedSince(seq uint64, limit int) ([]ConfirmedMessage, error) {
	seq = max(seq, n.store.FirstConfirmation())
	cs, err := n.store.ByConfirmation(seq, limit)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]ConfirmedMessage, len(cs))
	for i, c := range cs {
		mi, err := n.entryInfo(c.Entry)
		if err != nil {
			return nil, err
		}
		out[i] = ConfirmedMessage{Seq: c.Seq, MessageInfo: mi}
	}
	return out, nil
}
