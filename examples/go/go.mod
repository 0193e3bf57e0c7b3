module shardz-examples

go 1.19

require shardz v0.0.0

replace shardz => ../../go
