package ui

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/x/ansi"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/ui/screen"
)

// helpView is the help, height lines of it from helpTop: this person's
// own way back in first (what they need when their connection drops),
// then every key, then what the room promises.
func (m *Model) helpView(height int) []screen.Line {
	var lines []screen.Line
	add := func(more ...[]screen.Line) { lines = join(append([][]screen.Line{lines}, more...)...) }

	add(m.text(m.styles.header, "Your own way back into this room (keep it to yourself):"))
	add(m.command(m.rejoin))
	add(m.text(m.styles.help, "If your connection drops, or you leave, it brings you back as "+
		safetext.Sanitize(m.snap.Me.Name)+", with the conversation."), blank)

	add(m.text(m.styles.header, "Keys"))
	bell := "ring the terminal's bell when your partner writes: now on"
	if !m.bell {
		bell = "ring the terminal's bell when your partner writes: now off"
	}
	for _, k := range []struct {
		binding key.Binding
		desc    string
	}{
		{keys.Send, "send the message"},
		{keys.Newline, "start a new line (or ctrl+j); a message has at most " + strconv.Itoa(safetext.MaxMessageLines) + " lines"},
		{keys.ScrollUp, "scroll through the conversation; end goes back to the newest"},
		{keys.Copy, "copy the command that invites your partner; once you two have met, your own way back in (above)"},
		{keys.BellOn, bell},
		{keys.Reopen, "give a seat kept for your partner, who is away, to someone new"},
		{keys.Destroy, "destroy the room and every message in it, for both of you"},
		{keys.Leave, "leave; your seat is kept for you while the room lives"},
		{keys.Help, "this help (or ctrl+/); esc closes it"},
	} {
		name := k.binding.Help().Key
		prefix := "  " + m.styles.key.Render(name) + strings.Repeat(" ", max(12-len(name), 1))
		for _, l := range hang(prefix, k.desc, m.styles.help, m.width) {
			lines = append(lines, screen.Line{Text: l})
		}
	}
	add(blank, m.text(m.styles.header, "Editing"))
	for _, k := range editingKeys {
		prefix := "  " + m.styles.key.Render(k[0]) + strings.Repeat(" ", max(12-ansi.StringWidth(k[0]), 1))
		for _, l := range hang(prefix, k[1], m.styles.help, m.width) {
			lines = append(lines, screen.Line{Text: l})
		}
	}
	add(blank)
	add(m.text(m.styles.help, "The room self-destructs when the countdown at the top reaches 0:00, "+
		"or as soon as either of you destroys it. Once two people have met in it, it is sealed to them: "+
		"its command admits nobody new."))
	return window(lines, &m.helpTop, height, m.width)
}

// editingKeys are the input's own keys (textinput's key map, and recallKey).
var editingKeys = [][2]string{
	{"↑", "bring back your last message, sent or erased, into an empty input"},
	{"ctrl+a/e", "go to the start / end of the line"},
	{"alt+b/f", "go back / forward a word"},
	{"ctrl+w", "delete the word before the cursor"},
	{"ctrl+u/k", "delete to the start / end of the line"},
}

// window is height lines of lines from *top (which it keeps in range),
// blank lines below if they are fewer. A command that would run on past
// the window's last row is cut at the edge instead.
func window(lines []screen.Line, top *int, height, width int) []screen.Line {
	height = max(height, 0)
	*top = min(*top, max(len(lines)-height, 0))
	out := make([]screen.Line, height)
	copy(out, lines[*top:])
	for i, l := range out {
		if l.Overflow && i+(ansi.StringWidth(l.Text)+width-1)/width > len(out) {
			out[i].Overflow = false
		}
	}
	return out
}
