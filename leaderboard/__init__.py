"""Leaderboard: tables of mean-over-seeds results rendered as Markdown and CSV."""
