// The `tinyshard` command line: parse, run, and turn every error into one line on stderr and an exit
// code (0 success, 1 problems found, 2 usage or unreadable input). See TinyShard.swift.
TinyShard.runMain()
