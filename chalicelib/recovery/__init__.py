"""Recovery: the primary's health and the replay of the backlog into it, in each author's order."""
