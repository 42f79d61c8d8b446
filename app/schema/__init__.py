def export_sdl() -> str:
    raise NotImplementedError
