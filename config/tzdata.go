package config

// The zone database is built in: a server or a container without /usr/share/zoneinfo
// still understands `timezone = "America/El_Salvador"`.
import _ "time/tzdata"
