package main

// stripper turns a terminal output stream into its plain text by dropping
// escape sequences. It keeps its state between calls, so a sequence split
// across writes is still recognised. Printable text, including CR, LF and
// tab, passes through; other C0 controls and DEL are dropped.
type stripper struct {
	state stripState
}

type stripState uint8

const (
	ground    stripState = iota
	escape               // after ESC
	escInter             // ESC followed by intermediates (0x20–0x2F), such as ESC ( B
	csi                  // ESC [: parameters and intermediates until a final byte
	osc                  // ESC ]: until BEL or ESC \
	oscEscape            // ESC inside an OSC: \ ends it, anything else starts a new sequence
	str                  // ESC P, X, ^ or _ (DCS, SOS, PM, APC): until ESC \
	strEscape            // ESC inside such a string
)

const (
	esc = 0x1b
	bel = 0x07
	can = 0x18 // CAN and SUB abort a sequence
	sub = 0x1a
)

// strip appends the plain text in p to dst.
func (s *stripper) strip(dst, p []byte) []byte {
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch s.state {
		case ground:
			switch {
			case b == esc:
				s.state = escape
			case b >= 0x20 && b != 0x7f, b == '\r', b == '\n', b == '\t':
				dst = append(dst, b)
			}
		case escape:
			switch {
			case b == '[':
				s.state = csi
			case b == ']':
				s.state = osc
			case b == 'P', b == 'X', b == '^', b == '_':
				s.state = str
			case b >= 0x20 && b <= 0x2f:
				s.state = escInter
			case b == esc:
				// ESC ESC: the second one starts the sequence.
			default:
				// A two-byte sequence (ESC 7, ESC =, ...), or garbage.
				s.state = ground
			}
		case escInter:
			switch {
			case b >= 0x20 && b <= 0x2f:
			case b == esc:
				s.state = escape
			default:
				s.state = ground
			}
		case csi:
			switch {
			case b >= 0x20 && b <= 0x3f:
				// Parameters and intermediates.
			case b == esc:
				s.state = escape
			case b < 0x20 && b != can && b != sub:
				// A control inside CSI is executed by terminals; it
				// shows nothing either way.
			default:
				// The final byte (0x40–0x7E), or an abort.
				s.state = ground
			}
		case osc:
			switch b {
			case bel, can, sub:
				s.state = ground
			case esc:
				s.state = oscEscape
			}
		case str:
			switch b {
			case can, sub:
				s.state = ground
			case esc:
				s.state = strEscape
			}
		case oscEscape, strEscape:
			if b == '\\' {
				s.state = ground
				continue
			}
			// The string ended unterminated; this byte follows an ESC.
			s.state = escape
			i--
		}
	}
	return dst
}
