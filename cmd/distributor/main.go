// Command distributor is pyrodist's data plane. The ingest work (issue 3) owns this file.
package main

func main() {}
