"""Operations on a stopped stream's group: moving its offsets (``kedro stream reset``)."""
