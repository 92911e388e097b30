"""Profiling stage: sentiment, aspects, interests, RFM, embeddings, user profiles, segments."""
