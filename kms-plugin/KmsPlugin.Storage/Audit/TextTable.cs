using System.Text;

namespace KmsPlugin.Storage.Audit;

/// <summary>A plain-text table like kubectl's: a header row, columns two spaces apart, numbers right-aligned.</summary>
internal sealed class TextTable(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public void Add(params string[] cells)
    {
        if (cells.Length != headers.Length)
        {
            throw new ArgumentException($"{cells.Length} cells for {headers.Length} columns");
        }

        _rows.Add(cells);
    }

    public void WriteTo(TextWriter output)
    {
        var widths = headers.Select((h, i) => _rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        // A column of counts ("-" where a count does not apply) is right-aligned.
        var numeric = headers.Select((_, i) => _rows.Any(r => IsCount(r[i])) && _rows.All(r => r[i] == "-" || IsCount(r[i]))).ToArray();
        WriteRow(output, headers, widths, numeric);
        foreach (var row in _rows)
        {
            WriteRow(output, row, widths, numeric);
        }
    }

    private static bool IsCount(string cell) => cell.Length > 0 && cell.All(char.IsAsciiDigit);

    private static void WriteRow(TextWriter output, string[] cells, int[] widths, bool[] numeric)
    {
        var line = new StringBuilder();
        for (var i = 0; i < cells.Length; i++)
        {
            if (i > 0)
            {
                line.Append("  ");
            }

            line.Append(numeric[i] ? cells[i].PadLeft(widths[i]) : cells[i].PadRight(widths[i]));
        }

        output.WriteLine(line.ToString().TrimEnd());
    }
}
