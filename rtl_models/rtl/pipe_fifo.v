`default_nettype none
// pipe_fifo: synchronous first-word-fall-through FIFO.
//
// The head word is visible on out_data while out_valid is 1 and leaves with
// out_valid && out_ready. A word written at a clock edge is visible after that edge
// (no extra latency: an empty FIFO passes a word through in one cycle).
module pipe_fifo #(
    parameter WIDTH = 8,   // bits per word
    parameter DEPTH = 16   // words; a power of two, >= 2
) (
    input  wire             clk,
    input  wire             rst,
    input  wire [WIDTH-1:0] in_data,
    input  wire             in_valid,
    output wire             in_ready,   // not full
    output wire [WIDTH-1:0] out_data,
    output wire             out_valid,  // not empty
    input  wire             out_ready,
    output wire [AW:0]      count       // words held
);
    localparam AW = clog2(DEPTH);

    function integer clog2;
        input integer value;
        integer v;
        begin
            clog2 = 0;
            for (v = value - 1; v > 0; v = v >> 1)
                clog2 = clog2 + 1;
        end
    endfunction

`ifndef SYNTHESIS
    initial begin
        if (WIDTH < 1) begin
            $display("pipe_fifo: WIDTH %0d must be >= 1", WIDTH);
            $finish;
        end
        if (DEPTH < 2 || (1 << AW) != DEPTH) begin
            $display("pipe_fifo: DEPTH %0d must be a power of two >= 2", DEPTH);
            $finish;
        end
    end
`endif

    reg [WIDTH-1:0] mem [0:DEPTH-1];
    reg [AW:0] wr_ptr_reg, rd_ptr_reg;

    wire full = (wr_ptr_reg[AW] != rd_ptr_reg[AW]) &&
                (wr_ptr_reg[AW-1:0] == rd_ptr_reg[AW-1:0]);
    wire empty = wr_ptr_reg == rd_ptr_reg;

    assign in_ready = !full;
    assign out_valid = !empty;
    assign out_data = mem[rd_ptr_reg[AW-1:0]];
    assign count = wr_ptr_reg - rd_ptr_reg;

    always @(posedge clk) begin
        if (in_valid && !full)
            mem[wr_ptr_reg[AW-1:0]] <= in_data;
        if (rst) begin
            wr_ptr_reg <= 0;
            rd_ptr_reg <= 0;
        end else begin
            if (in_valid && !full)
                wr_ptr_reg <= wr_ptr_reg + 1'b1;
            if (out_ready && !empty)
                rd_ptr_reg <= rd_ptr_reg + 1'b1;
        end
    end
endmodule
