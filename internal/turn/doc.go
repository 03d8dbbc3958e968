// Package turn runs one begun turn of a conversation: the Claude Code CLI
// under its deadlines, the translation of its output into the app's events,
// the save that comes BEFORE the terminal event, cancellation, and the
// title of a new conversation.
package turn
