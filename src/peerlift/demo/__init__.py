"""The demo study: two arms, two circles, 24 participants and two weeks of history."""
