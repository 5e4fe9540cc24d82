"""Early warning (预警): risk words, clusters of disputes, repeated disputes between the same parties."""
