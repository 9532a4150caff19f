"""Trakt login: the OAuth adapter (`oauth`) and the keeper of the token pair (`tokens`)."""
