package modelproxy

// counts is the usage of one upstream response, which carries one message.
// Every usage field keeps the largest value seen: message_delta repeats
// message_start's counts and its output_tokens is cumulative, so summing
// would count twice.
//
// A stream reports output_tokens twice: 1 in message_start, the real count
// in message_delta at its end. A stream that ends before that (the client
// hangs up, the upstream cuts it, the session closes, an error) has shown
// its reader text worth far more than 1 token, so the generated content the
// proxy passed on is counted as well, and until the message's final usage
// arrives its output is charged as the larger of the output_tokens seen and
// that content at one token per bytesPerToken bytes, rounded up (see
// charged). Once the final usage arrives (message_delta's usage, Bedrock's
// invocation metrics, a whole JSON body) the message is charged exactly
// that, whatever its content came to.
type counts struct {
	model        string
	fast         bool // usage.speed "fast": a dearer tier
	input        int64
	cacheWrite   int64 // all cache writes, of which
	cacheWrite1h int64 // those with the one-hour lifetime
	cacheRead    int64
	output       int64
	webSearch    int64 // server-side web search requests
	// content is the bytes of generated content passed on: the text,
	// thinking, signature and tool input JSON of content_block_delta
	// events, or a non-streaming body's raw bytes.
	content int64
	final   bool // the message's final usage arrived
}

// bytesPerToken is the content estimate's ratio. Anthropic puts a Claude
// token at about 3.5 characters of English; 3 bytes errs towards charging
// too much, the safe mistake.
const bytesPerToken = 3

// charged is c as it is billed: with output raised to the content estimate
// while the final usage has not arrived.
func (c counts) charged() counts {
	if !c.final {
		c.output = max(c.output, (c.content+bytesPerToken-1)/bytesPerToken)
	}
	return c
}

// maxCount bounds a believable count for one response; a larger or negative
// number is ignored rather than trusted.
const maxCount = 100_000_000

func keepMax(dst *int64, v int64) {
	if v >= 0 && v <= maxCount && v > *dst {
		*dst = v
	}
}

// wireUsage is Anthropic's usage object (also inside Bedrock's chunks).
type wireUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreation            struct {
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	ServerToolUse struct {
		WebSearchRequests int64 `json:"web_search_requests"`
	} `json:"server_tool_use"`
	Speed string `json:"speed"`
}

// generated is the model-written part of a content_block_delta
// (text_delta, thinking_delta, signature_delta, input_json_delta).
type generated struct {
	Text        string `json:"text"`
	Thinking    string `json:"thinking"`
	Signature   string `json:"signature"`
	PartialJSON string `json:"partial_json"`
}

// payload is a streaming event, or a whole non-streaming message.
type payload struct {
	Type    string     `json:"type"`
	Model   string     `json:"model"` // a whole message
	Usage   *wireUsage `json:"usage"` // a whole message, or message_delta
	Message *struct {
		Model string     `json:"model"`
		Usage *wireUsage `json:"usage"`
	} `json:"message"` // message_start
	Delta   *generated `json:"delta"` // content_block_delta; message_delta's holds none
	Metrics *struct {
		InputTokenCount           int64 `json:"inputTokenCount"`
		OutputTokenCount          int64 `json:"outputTokenCount"`
		CacheReadInputTokenCount  int64 `json:"cacheReadInputTokenCount"`
		CacheWriteInputTokenCount int64 `json:"cacheWriteInputTokenCount"`
	} `json:"amazon-bedrock-invocationMetrics"` // Bedrock's last event
}

func (c *counts) observe(p *payload) {
	if p.Message != nil {
		c.setModel(p.Message.Model)
		c.usage(p.Message.Usage)
	}
	if p.Type == "message" {
		c.setModel(p.Model)
	}
	c.usage(p.Usage)
	if m := p.Metrics; m != nil {
		keepMax(&c.input, m.InputTokenCount)
		keepMax(&c.output, m.OutputTokenCount)
		keepMax(&c.cacheRead, m.CacheReadInputTokenCount)
		keepMax(&c.cacheWrite, m.CacheWriteInputTokenCount)
	}
	if d := p.Delta; d != nil {
		c.content += int64(len(d.Text) + len(d.Thinking) + len(d.Signature) + len(d.PartialJSON))
	}
	if (p.Type == "message_delta" && p.Usage != nil) || p.Metrics != nil {
		c.final = true
	}
}

func (c *counts) setModel(m string) {
	if m != "" && len(m) <= 200 {
		c.model = m
	}
}

func (c *counts) usage(u *wireUsage) {
	if u == nil {
		return
	}
	keepMax(&c.input, u.InputTokens)
	keepMax(&c.cacheWrite, u.CacheCreationInputTokens)
	keepMax(&c.cacheWrite1h, u.CacheCreation.Ephemeral1h)
	keepMax(&c.cacheRead, u.CacheReadInputTokens)
	keepMax(&c.output, u.OutputTokens)
	keepMax(&c.webSearch, u.ServerToolUse.WebSearchRequests)
	if u.Speed == "fast" {
		c.fast = true
	}
}
