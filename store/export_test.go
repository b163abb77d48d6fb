package store

// HasRoom reports whether m still holds anything of room id.
func (m *Memory) HasRoom(id RoomID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.rooms[id]
	return ok
}
