package samtemplate

import (
	"bufio"
	"os"
	"strings"
)

// DockerfileEnv reads the ENV instructions of a Dockerfile's final stage:
// the environment the stream function's image sets beside the template's.
func DockerfileEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		l := cur.String()
		cur.Reset()
		if strings.HasPrefix(strings.ToUpper(l), "FROM ") {
			env = map[string]string{} // only the final stage counts
		}
		if rest, ok := strings.CutPrefix(l, "ENV "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	return env, sc.Err()
}
