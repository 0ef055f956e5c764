package bench

import "github.com/google/pprof/profile"

// gpprofParse checks an outgoing profile with the independent parser.
func gpprofParse(b []byte) (*profile.Profile, error) {
	p, err := profile.ParseData(b)
	if err != nil {
		return nil, err
	}
	return p, p.CheckValid()
}
