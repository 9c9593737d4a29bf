package events

import "unicode/utf8"

// MaxRecordedCommand bounds TestRecord.Command in bytes: a build's record
// holds every test's command (up to a thousand tests) and must stay far
// below JetStream's message limit, while the plan only has to let a
// reader recognise the command.
const MaxRecordedCommand = 512

// RecordedCommand is cmd as a build record keeps it: whole when it fits
// in MaxRecordedCommand bytes, else its start cut at a character boundary
// and ended with "…". Invalid UTF-8 is kept as it is: every place that
// shows the command escapes it.
func RecordedCommand(cmd string) string {
	if len(cmd) <= MaxRecordedCommand {
		return cmd
	}
	const ellipsis = "…"
	cut := MaxRecordedCommand - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(cmd[cut]) {
		cut--
	}
	return cmd[:cut] + ellipsis
}
