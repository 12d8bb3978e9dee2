-- 0209_auth_users_lower_email_index.sql
--
-- Owns: the index that finds a user by address (auth.users, 0003_auth.sql).
--
-- Sign-in, sign-up's duplicate check, OAuth account linking and email changes
-- look a user up by `lower(email) = … AND NOT is_sso_user`. GoTrue's schema
-- has lower(email) only as the second column of users_instance_id_email_idx
-- (instance_id, lower(email)); with instance_id unconstrained, PostgreSQL
-- used that index by reading all of it, so every sign-in read a page per
-- few hundred users (18 index pages at 744 users, growing with the table).
-- This index answers the same predicate in a couple of pages at any size.
-- Verifying an emailed code looks for the address in email or email_change;
-- with the second index that is two index lookups instead of reading the
-- whole table.

CREATE INDEX IF NOT EXISTS users_lower_email_idx ON auth.users (lower(email::text)) WHERE NOT is_sso_user;
CREATE INDEX IF NOT EXISTS users_lower_email_change_idx ON auth.users (lower(email_change::text)) WHERE NOT is_sso_user;
