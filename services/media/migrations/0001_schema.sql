-- The media schema belongs to the media service; no other service reads or writes it.
COMMENT ON SCHEMA media IS 'Switchboard media: anchored RTP for every call, stereo recording, prompts, DTMF, live listen, recording storage';
