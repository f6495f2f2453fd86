"""The ``ingest`` stage: raw videos + a manifest -> fixed-size clips and the clip manifest."""
