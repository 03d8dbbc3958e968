// Package webtest drives the web client (web/, built by make web into
// build/web) in a headless Chromium against the whole local stack that
// make dev runs, in process: DynamoDB Local, the stand-ins, the real
// Claude Code CLI answering through the offline demo model.
//
// The tests need Chromium or Chrome: make deps installs Debian's chromium,
// OVRLRD_CHROMIUM names another browser, and OVRLRD_WEB_TESTS=skip skips
// them. Screenshots of the signed-in screen go to build/screenshots/.
//
// Nothing here is shipped: the package holds only tests.
package webtest
