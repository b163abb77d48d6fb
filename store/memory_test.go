package store_test

import (
	"testing"
	"time"

	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New:      func(_ *testing.T, ttl time.Duration) store.Store { return store.NewMemory(ttl) },
		TTL:      10 * time.Minute,
		FakeTime: true,
		Residue: func(_ *testing.T, s store.Store, id store.RoomID) []string {
			if s.(*store.Memory).HasRoom(id) {
				return []string{"rooms[" + id.String() + "]"}
			}
			return nil
		},
	})
}
