"""The embedded lineage service: an Atlas REST v2 subset over a graph fed by ATLAS_HOOK."""
