// Package runtimetest runs the functions' real bootstraps under the AWS
// Lambda Runtime Interface Emulator, with the environment template.yaml
// gives them, and checks what they answer and every AWS call they make
// against the roles the template grants. Its tests need DynamoDB Local
// (`make test` starts one) and the Go module proxy the first time, to build
// the pinned emulator.
package runtimetest
