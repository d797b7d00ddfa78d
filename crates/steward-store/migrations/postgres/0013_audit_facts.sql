-- Migration 13: each audit entry's facts (steward_audit::facts), the few
-- fields the compliance report counts, in a compact copy beside the entry,
-- so a pass over millions of entries reads ~60 bytes per entry instead of
-- copying and parsing the JSON. Like the other copied columns, not covered
-- by the leaf hash and not trusted by verification. Entries appended before
-- this migration have none (NULL): readers use the entry itself for those.
-- Never edit once landed.
ALTER TABLE audit_log ADD COLUMN facts BYTEA;
