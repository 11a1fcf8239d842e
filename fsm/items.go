package fsm

// Tenant item counts: the exact number of distinct item IDs each tenant has
// posted. A batch is one log entry and is applied whole or not at all; an
// item posted again (a retry, or twice in one batch) counts once.

// MaxItemBatch is the hard cap on items in one batch, whatever the node's
// configured limit: it bounds the size of one log entry.
const MaxItemBatch = 1_000_000

// Item is one item of one tenant.
type Item struct {
	Tenant string
	ID     string
}

// ItemsAdded is the result of a batch.
type ItemsAdded struct {
	// Added counts items new to their tenant; Duplicates the rest.
	Added      int64
	Duplicates int64
	Index      uint64
}

// TenantCount is a tenant's item count as reads return it.
type TenantCount struct {
	Tenant string
	Count  int64
	// Index is the log index of the last batch that added to the tenant, 0
	// if none did.
	Index uint64
}

// tenant holds the IDs themselves, not hashes of them: the count must be
// exact, and a hash collision would silently lose an item.
type tenant struct {
	items map[string]struct{}
	index uint64
}

// TenantCount reads one tenant's count; a tenant never written counts 0.
func (s *State) TenantCount(name string) (*TenantCount, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := &TenantCount{Tenant: name}
	if t := s.tenants[name]; t != nil {
		out.Count, out.Index = int64(len(t.items)), t.index
	}
	return out, s.applied
}

// ItemsAdd adds a batch of items.
type ItemsAdd struct {
	Items []Item
}

// Op implements Payload.
func (ItemsAdd) Op() Op { return OpItemsAdd }

// Validate implements Payload. One bad item refuses the whole batch.
func (p ItemsAdd) Validate() error {
	if len(p.Items) == 0 {
		return errorf(CodeBadRequest, "an item batch must not be empty")
	}
	if len(p.Items) > MaxItemBatch {
		return errorf(CodeTooLarge, "a batch may hold at most %d items, got %d", MaxItemBatch, len(p.Items))
	}
	for i, it := range p.Items {
		if err := CheckName("tenant", it.Tenant); err != nil {
			return errorf(CodeInvalidName, "item %d: %s", i, err.(*Error).Message)
		}
		if err := CheckItemID(it.ID); err != nil {
			return errorf(CodeInvalidName, "item %d: %s", i, err.(*Error).Message)
		}
	}
	return nil
}

func (p ItemsAdd) encode(e *encoder) {
	e.uvarint(uint64(len(p.Items)))
	for _, it := range p.Items {
		e.string(it.Tenant)
		e.string(it.ID)
	}
}

func decodeItemsAdd(d *decoder) Payload {
	n := d.uvarint()
	if n > uint64(len(d.buf))/2 { // every item takes at least two bytes
		d.fail(errShort)
		return ItemsAdd{}
	}
	p := ItemsAdd{Items: make([]Item, n)}
	for i := range p.Items {
		p.Items[i] = Item{Tenant: d.string(), ID: d.string()}
	}
	return p
}

func (p ItemsAdd) apply(s *State, index uint64) (any, error) {
	out := &ItemsAdded{Index: index}
	for _, it := range p.Items {
		t := s.tenants[it.Tenant]
		if t == nil {
			t = &tenant{items: make(map[string]struct{})}
			s.tenants[it.Tenant] = t
		}
		if _, dup := t.items[it.ID]; dup {
			out.Duplicates++
			continue
		}
		t.items[it.ID] = struct{}{}
		t.index = index
		out.Added++
	}
	return out, nil
}

func init() {
	register(OpItemsAdd, "items.add", decodeItemsAdd)
}
