module shardz

go 1.19
