-- Message DB installs pgcrypto for gen_random_uuid(); PostgreSQL 13+ has the
-- function in core, but Message DB clients and its grant on
-- gen_random_uuid() expect the extension, so it is installed all the same.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
