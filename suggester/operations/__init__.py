"""Operations: what the team does with inquiries beyond a reply (incidents raised from them)."""
