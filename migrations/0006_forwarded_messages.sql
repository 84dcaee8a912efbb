-- Failing messages that the receiver delivered anyway because of a forwarding override
-- (reason forwarded, trusted_forwarder, mailing_list or local_policy, which receivers use for
-- ARC-validated forwarding). Without it, forwarded mail would read as spoofing.
ALTER TABLE daily_sender_stats ADD COLUMN forwarded_messages bigint NOT NULL DEFAULT 0;
ALTER TABLE daily_domain_stats ADD COLUMN forwarded_messages bigint NOT NULL DEFAULT 0;
